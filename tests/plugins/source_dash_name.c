/* A valid source whose name has a dash: its entry symbol uses an underscore. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "dash-name",
        .version = "1.0.0",
        .description = "Source with a dash in its name",
        .license = "MIT",
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, dash_name, plugin)
