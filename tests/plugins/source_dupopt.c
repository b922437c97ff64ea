/* An option table that declares one key twice. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_option options[] = {
        {.name = "host", .type = GW_OPT_STRING, .offset = offsetof(struct test_config, host)},
        {.name = "port", .type = GW_OPT_INT, .offset = offsetof(struct test_config, port)},
        {.name = "host", .type = GW_OPT_STRING, .offset = offsetof(struct test_config, host)},
        GW_OPTION_END,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "dupopt",
        .options = options,
        .config_size = sizeof(struct test_config),
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, dupopt, plugin)
