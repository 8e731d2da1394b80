"""One process of the multi-process scoring test (tests/pools/test_distributed.py).

    python -m tests.pools.dist_worker OUT.json [PORT NUM_PROCESSES PROCESS_ID]

Without PORT: one process, no jax.distributed. Writes the top-k of a fixed
pool under BALD (with embeddings as payload) and under a coarse score with
many ties, and the process's row range, as JSON.
"""

from __future__ import annotations

import json
import sys


def tied_score(chunk, key):
    """BALD rounded to steps of 0.02: many equal scores, so ties (lowest global index wins) decide."""
    import jax.numpy as jnp

    from bal.acquisition import bald

    return jnp.round(bald(chunk.log_probs) * 50.0) / 50.0


def main(argv):
    out = argv[0]
    import jax

    if len(argv) > 1:
        port, count, pid = argv[1], int(argv[2]), int(argv[3])
        jax.distributed.initialize(coordinator_address=f"127.0.0.1:{port}", num_processes=count, process_id=pid)
    import numpy as np

    from bal import pools
    from bal.pools.distributed import process_range
    from tests.pools.helpers import pool_array, tiny_posterior

    post, variables = tiny_posterior()
    source = pools.ArraySource(pool_array(1000, seed=4))
    key = jax.random.key(11)
    bald = pools.score_distributed(post, variables, source, key, 37, chunk_size=64, payload=("embedding",),
                                   state_path=argv[0] + ".state")
    tied = pools.score_distributed(post, variables, source, key, 120, strategy=tied_score, chunk_size=64)
    record = {"process": jax.process_index(), "count": jax.process_count(),
              "range": process_range(1000, 64, jax.process_count(), jax.process_index()),
              "bald": bald.indices.tolist(), "bald_scores": bald.scores.tolist(),
              "embedding": np.asarray(bald.payload["embedding"]).tolist(), "num_scored": bald.num_scored,
              "tied": tied.indices.tolist(), "tied_scores": tied.scores.tolist()}
    with open(out, "w") as f:
        json.dump(record, f)
    if len(argv) > 1:
        jax.distributed.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
