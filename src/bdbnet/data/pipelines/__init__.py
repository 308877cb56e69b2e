"""Alternative training data paths (``data.pipeline``); ``pil`` is the DataLoader path of
:mod:`bdbnet.data.pipelines.pil`, ``tensor`` is :mod:`bdbnet.data.pipelines.tensor`."""
