/* The descriptor names another plugin than the file does. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "othername",
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, badname, plugin)
