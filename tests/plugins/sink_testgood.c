/* A complete, valid sink plugin. */
#include "test_plugin_ops.h"

static const struct gw_sink_ops ops = {TEST_SINK_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SINK,
        .name = "testgood",
        .version = "0.9.0",
        .description = "Test sink for the loader tests",
        .license = "MIT",
        .sink = &ops,
};

GW_PLUGIN_DEFINE(sink, testgood, plugin)
