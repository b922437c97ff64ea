/**
 * @file godwit/options.h
 * @brief Declarative option tables.
 *
 * A plugin declares its options once, as a table; the core validates the
 * profile's YAML mapping against it (unknown keys are errors with a
 * "did you mean"), applies defaults, resolves secrets and binds each value
 * into the plugin's config struct at @c offset. The same table produces
 * `godwit plugins NAME` and the option reference in the docs.
 *
 * Bound C types, by option type:
 * | type               | field type              | notes                                  |
 * |--------------------|-------------------------|----------------------------------------|
 * | GW_OPT_STRING      | `const char *`          | NULL when unset and no default          |
 * | GW_OPT_SECRET      | `const char *`          | `${ENV}` / `${file:/path}` resolved     |
 * | GW_OPT_INT         | `int64_t`               |                                         |
 * | GW_OPT_BOOL        | `bool`                  | true/false/yes/no/on/off                |
 * | GW_OPT_SIZE        | `uint64_t` (bytes)      | `35MB`, `512KiB`, `100` (bytes)         |
 * | GW_OPT_DURATION    | `uint64_t` (ms)         | `30s`, `500ms`, `5m`, `1h`              |
 * | GW_OPT_ENUM        | `int` (index)           | index into gw_option::choices           |
 * | GW_OPT_LIST        | `struct gw_str_list`    | YAML sequence (or one scalar) of strings|
 * | GW_OPT_PATH        | `const char *`          | relative paths resolved against the     |
 * |                    |                         | profile's folder, like the profile's own|
 *
 * Strings bound by the core live as long as the pipeline that uses them.
 */
#ifndef GODWIT_OPTIONS_H
#define GODWIT_OPTIONS_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Type of an option value. */
enum gw_opt_type {
	GW_OPT_STRING = 1,
	GW_OPT_INT,
	GW_OPT_BOOL,
	GW_OPT_SIZE,
	GW_OPT_DURATION,
	GW_OPT_ENUM,
	GW_OPT_LIST,
	GW_OPT_SECRET,
	GW_OPT_PATH, /**< A file or folder name; may contain {placeholders} the plugin expands. */
};

/** Option flags. */
enum gw_opt_flags {
	GW_OPT_REQUIRED = 1u << 0, /**< The profile must set it (a default is then ignored). */
};

/** A bound GW_OPT_LIST value. */
struct gw_str_list {
	size_t count;             /**< Number of items. */
	const char *const *items; /**< @c count strings, UTF-8. */
};

/** One declared option. Tables end with an entry whose @c name is NULL. */
struct gw_option {
	const char *name;           /**< Key in the profile, lower_snake_case. */
	enum gw_opt_type type;      /**< Value type. */
	const char *default_value;  /**< Default, written as in YAML; NULL for none. */
	unsigned flags;             /**< enum gw_opt_flags. */
	size_t offset;              /**< offsetof(config struct, field). */
	const char *const *choices; /**< GW_OPT_ENUM: NULL-terminated allowed values. */
	const char *description;    /**< One line for help and docs. */
};

/** Convenience: the terminating entry of an option table. */
#define GW_OPTION_END                                                                              \
	{                                                                                          \
		0                                                                                  \
	}

#ifdef __cplusplus
}
#endif
#endif
