"""Reproductions of published protocols (Office-Caltech10 SURF with the papers' SVM, MNIST pool size).

They check that adaptune's shallow methods and digits setup match the papers under the papers' own classifiers
and data; the product never runs them. See README.md here for what each one reproduces and found.
"""
