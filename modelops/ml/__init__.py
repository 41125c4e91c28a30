"""Model building, local serving and drift: ``modelops build`` / ``serve`` / ``drift``.

Example::

    from modelops.ml.serve import start_server
    with start_server(".modelops/artifacts/<hex>/model.tar.gz") as server:
        print(server.url)
"""

__all__ = ["baseline", "build", "capture", "drift", "estimators", "inference", "package", "serve", "table"]
