/* An option whose type is not one of enum gw_opt_type. */
#include "test_plugin_ops.h"

static const struct gw_source_ops ops = {TEST_SOURCE_OPS};

static const struct gw_option options[] = {
        {.name = "port", .type = (enum gw_opt_type)99, .offset = 0},
        GW_OPTION_END,
};

static const struct gw_plugin plugin = {
        GW_PLUGIN_HEADER,
        .kind = GW_PLUGIN_SOURCE,
        .name = "badopttype",
        .options = options,
        .config_size = sizeof(struct test_config),
        .source = &ops,
};

GW_PLUGIN_DEFINE(source, badopttype, plugin)
