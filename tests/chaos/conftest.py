# Puts tests/cluster (synod_harness) and tests/chaos (checker) on sys.path and
# defaults SYNOD_BIN & co. to build/default when CTest did not set them.
import synod_chaos  # noqa: F401
