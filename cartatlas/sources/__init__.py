"""Registry sources: readers for downloaded files and clients for live APIs.

Sources only split input into records and say what each is (registry, id,
format, the registry's update date); interpreting a record is the
normaliser's job.  Every reader yields ``RawRecord`` or, for input it cannot
use, a ``Reject`` naming the file, the place in it and the problem.
"""
