"""Maintenance of what cycles leave behind: monthly partitions, monitoring snapshots, and the
DAGs that run them.
"""
