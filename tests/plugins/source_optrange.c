/* An option bound past the end of the config struct: binding it would overrun. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_option options[] = {
        {.name = "port", .type = GW_OPT_INT, .offset = sizeof(struct test_config)},
        GW_OPTION_END,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "optrange",
        .options = options,
        .config_size = sizeof(struct test_config),
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, optrange, plugin)
