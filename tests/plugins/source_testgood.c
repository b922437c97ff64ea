/* A complete, valid source plugin: loads, and its operations can be called. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "testgood",
        .version = "1.2.3",
        .description = "Test source for the loader tests",
        .license = "MIT",
        .capabilities = GW_CAP_INTERNALDATE,
        .options = test_options,
        .config_size = sizeof(struct test_config),
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, testgood, plugin)
