/* A sink that also carries a source table: exactly one must be set. */
#include "test_plugin_ops.h"

static const struct gw_sink_ops sink_ops = {TEST_SINK_OPS};
static const struct gw_source_ops source_ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,      .kind = GW_PLUGIN_SINK, .name = "bothops",
        .source = &source_ops, .sink = &sink_ops,
};

GW_PLUGIN_DEFINE(sink, bothops, plugin)
