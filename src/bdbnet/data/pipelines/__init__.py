"""Alternative training data paths (``data.pipeline``); ``pil`` is the DataLoader path of
:mod:`bdbnet.engine.batch_source`, ``tensor`` is :mod:`bdbnet.data.pipelines.tensor`."""
