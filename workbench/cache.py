"""The cache: Django's Redis cache, but Redis out of reach is a miss, not an
error.

The cache holds nothing that must not be lost: rate-limit counts (the API's
per key, the notice page's per address) and the like. While Redis is down,
intake, decisions and the customer's notice page carry on (rate limits fail
open: ``RATELIMIT_FAIL_OPEN``), and each failure is logged as a warning.
"""

import functools
import logging

from django.core.cache.backends.redis import RedisCache
from redis import RedisError

logger = logging.getLogger(__name__)


def _miss(method, answer):
    @functools.wraps(method)
    def call(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except RedisError as error:
            logger.warning("cache unreachable, %s skipped: %s", method.__name__, error)
            return answer(*args, **kwargs)

    return call


class FailOpenRedisCache(RedisCache):
    # What each operation gives while Redis is out of reach.
    add = _miss(RedisCache.add, lambda *a, **k: False)
    get = _miss(RedisCache.get, lambda key, default=None, version=None: default)
    set = _miss(RedisCache.set, lambda *a, **k: None)
    touch = _miss(RedisCache.touch, lambda *a, **k: False)
    delete = _miss(RedisCache.delete, lambda *a, **k: False)
    get_many = _miss(RedisCache.get_many, lambda *a, **k: {})
    has_key = _miss(RedisCache.has_key, lambda *a, **k: False)
    incr = _miss(RedisCache.incr, lambda *a, **k: None)  # the rate limit: no count
    set_many = _miss(RedisCache.set_many, lambda keys, *a, **k: list(keys))
    delete_many = _miss(RedisCache.delete_many, lambda *a, **k: None)
