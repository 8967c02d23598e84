"""Account-wide limits: one rate and one budget for every task that uses the same token.

``local`` keeps them in this process; ``shared`` keeps the same state in Redis so that
every worker draws from it; ``account`` picks one from the connection and falls back.
No Airflow here: the hook hands in a Redis client.
"""
