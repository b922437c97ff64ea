/* A sink with flush_begin but no flush_wait: a flush it began could never be
 * waited for, so the loader refuses it. */
#include "test_plugin_ops.h"

static gw_status halfflush_begin(void *session)
{
	(void)session;
	return GW_OK;
}

static const struct gw_sink_ops sink_ops = {TEST_SINK_OPS, .flush_begin = halfflush_begin};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "halfflush",
        .sink = &sink_ops,
};

GW_PLUGIN_DEFINE(sink, halfflush, plugin)
