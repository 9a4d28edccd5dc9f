"""Execution: flow plans, the streams bus, workers, executors and built-in components.

Imports nothing from app/ or designer/: storage reaches it only through the small interfaces in
runtime.interfaces, which the app implements.
"""
