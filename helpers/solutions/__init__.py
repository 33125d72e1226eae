"""Reference solutions to the exercises, one module per notebook (``nb02.py``...).

Try an exercise before you open its solution: ``hp.show_solution("nb02_replayed")``.
Every solution is named ``nbNN_what``; a consumer-loop solution ends in ``_loop``.
"""
