// Placeholder replaced by the parquet benchmark (issue 7); prints nothing measured.
print("bench-parquet: not written yet")
