"""Reference implementations that tests compare the SQL against."""
