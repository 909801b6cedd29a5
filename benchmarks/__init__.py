"""psychofeat benchmarks: speed and memory measured against a baseline in the same run (not tests).

Run `python -m benchmarks --help`. Each benchmark prints a table of ratios and writes JSON.
"""
