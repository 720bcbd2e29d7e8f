"""Django's PostgreSQL backend, inserting many rows as VALUES lists.

Django 5.2 bulk-inserts on PostgreSQL through UNNEST of one array per column;
psycopg quotes every element of those arrays in Python, which was the largest
single cost of ingesting a batch of 1,000 cases (measured with cProfile:
over half the time of the insert). With server-side binding, plain VALUES
lists send each value as a parameter instead.
"""

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    compiler_module = "workbench.db.postgresql.compiler"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
