"""Where data lives: connections, the embedded server, migrations, the registry reader and
monthly partitions. Used by the cycle, the registry lifecycle and maintenance alike.
"""
