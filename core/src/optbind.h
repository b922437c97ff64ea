/* Binding a YAML mapping to a plugin's option table (godwit/options.h):
 * unknown keys (with "did you mean" and the valid keys), type errors, missing
 * required options and defaults, each reported at file:line:column with the
 * key path. Secrets are resolved here and registered with the log. */
#ifndef GW_OPTBIND_H
#define GW_OPTBIND_H

#include <stdbool.h>
#include <yaml.h>

#include <godwit/options.h>

#include "diag.h"

/* Memory the bound values point to (strings, lists); freed with the pipeline. */
struct gw_optstore;

/* Bind mapping node @p node_id of @p doc (0: no mapping, defaults only) into
 * @p config (config_size bytes, zeroed by the caller). Keys listed in
 * @p skip_keys (NULL-terminated, e.g. {"plugin", NULL}) are the caller's: they
 * are ignored in the mapping, and a table option of that name is neither
 * required nor given its default here.
 * @p key_path prefixes messages ("pipelines[0].source"). Returns false if
 * any error was added to @p diag. */
bool gw_options_bind(const struct gw_option *table, yaml_document_t *doc, int node_id,
                     const char *file, const char *key_path, const char *const *skip_keys,
                     void *config, struct gw_optstore **store, struct gw_diag *diag);
/* An empty store, for gw_option_parse_value outside of gw_options_bind. */
/* @p base_dir: GW_OPT_PATH values that are relative are joined to it (NULL: kept as written). */
struct gw_optstore *gw_optstore_new(const char *base_dir);
/* Frees every bound string and list (secrets are zeroed first); NULL is fine. */
void gw_optstore_free(struct gw_optstore *store);

/* Parse one textual value of @p opt (used for defaults and by the binder). */
bool gw_option_parse_value(const struct gw_option *opt, const char *text, void *config,
                           struct gw_optstore *store, char **error);

/* Print the effective value of every option of @p config, secrets as ***,
 * one "  name: value" line each, to @p out. */
void gw_options_print(const struct gw_option *table, const void *config, FILE *out,
                      const char *indent);
/* Name of an option type as docs and help show it ("size", "duration", ...). */
const char *gw_option_type_name(enum gw_opt_type type);

#endif
