"""The code behind the CLI verbs: each experiment is a function returning results plus a writer."""
