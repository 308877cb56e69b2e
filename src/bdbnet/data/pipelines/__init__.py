"""Training data paths (``data.pipeline``) behind one interface
(:class:`~bdbnet.data.pipelines.source.BatchSource`): ``pil``, DataLoader workers
(:mod:`~bdbnet.data.pipelines.pil`), and ``tensor``, a decoded split augmented on the device
(:mod:`~bdbnet.data.pipelines.tensor`; decoded in threads by :mod:`~bdbnet.data.pipelines.decode`,
once per machine under torchrun by :mod:`~bdbnet.data.pipelines.node_cache`)."""
