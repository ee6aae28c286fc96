"""Well-behaved models whose timing a fault controls through params.

Params every model here understands:

- ``rows``: outputs to produce (default 10);
- ``pace_s``: seconds that one full pass over the outputs takes, spread evenly, so that
  storing them (a COPY that reads them one by one) lasts long enough for a fault to land
  in the middle of it;
- ``sleep_s``: seconds to sleep in ``run`` first (a hung model, when longer than its timeout);
- ``signal_dir``: a folder where the model writes ``<model_id>.pid`` (the task process's id)
  when it starts, so a fault knows which process to kill.
"""
