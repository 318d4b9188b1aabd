"""Reusable views: each draws the data it is given (DataFrames, arrays, small results)."""
