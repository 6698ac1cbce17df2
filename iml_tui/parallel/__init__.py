"""Running independent tasks here, in processes or on Ray (``runner``), and the Ray helpers and
shard actors they need (``actors``). Below every other layer but ``audio``: the engine, feature
extraction and the faces all use it."""
