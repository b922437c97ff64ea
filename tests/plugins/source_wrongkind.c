/* A sink descriptor in a file named like a source. */
#include "test_plugin_ops.h"

static const struct gw_sink_ops ops = {TEST_SINK_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "wrongkind",
        .sink = &ops,
};

GW_PLUGIN_DEFINE(source, wrongkind, plugin)
