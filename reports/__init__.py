"""Reading and writing results: the Parquet leaderboard schema, tables and reports."""
