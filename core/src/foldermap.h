/* Folder mapping: which source folders a pipeline migrates and where they
 * land. Pure functions over the profile's folders: rules and the source's
 * listing, so every decision can be unit-tested without a server.
 *
 * Patterns (include, exclude, map) use '*' for any run of characters and
 * are matched against the folder's UTF-8 full name written with '/' as the
 * hierarchy separator, whatever delimiter the source uses: "Archives/" plus
 * a star means the same on a server with '.' as on one with '/'. A pattern that
 * starts with a backslash names a special-use role instead ("\Sent",
 * "\Trash", "\Inbox", ...), so rules can follow roles rather than localised
 * names. INBOX is matched case-insensitively, as IMAP defines it. */
#ifndef GW_FOLDERMAP_H
#define GW_FOLDERMAP_H

#include <stdbool.h>
#include <stddef.h>

#include <godwit/types.h>

#include "profile.h"

/* The folder rules of one pipeline (pointers into the profile). */
struct gw_folder_rules {
	const char *const *include; /* empty: every folder */
	size_t include_count;
	const char *const *exclude;
	size_t exclude_count;
	const struct gw_folder_map_rule *map; /* first matching rule wins */
	size_t map_count;
};

/* The rules of a pipeline as written in its profile. */
struct gw_folder_rules gw_folder_rules_of(const struct gw_pipeline_cfg *cfg);

/* What becomes of one listed source folder. */
enum gw_folder_disposition {
	GW_FOLDER_MIGRATE = 0, /* selected: mapped to @c path */
	GW_FOLDER_EXCLUDED,    /* left out by include/exclude */
	GW_FOLDER_CONTAINER,   /* \Noselect: holds no mail, its children are still considered */
	GW_FOLDER_ILLEGAL,     /* the name cannot be migrated: @c error says why */
};

struct gw_mapped_folder {
	char *source_name; /* as listed (UTF-8) */
	char delimiter;
	enum gw_folder_role role;
	enum gw_folder_disposition disposition;
	char **components; /* sink path (GW_FOLDER_MIGRATE only) */
	size_t component_count;
	struct gw_folder_path path; /* view of components + role for the sink */
	char *error;                /* GW_FOLDER_ILLEGAL: why */
};

/* Decide and map one folder. Always fills @p out (free with gw_mapped_folder_free). */
void gw_folder_map(const struct gw_folder_rules *rules, const struct gw_folder_info *info,
                   struct gw_mapped_folder *out);
void gw_mapped_folder_free(struct gw_mapped_folder *folder);

/* '*'-pattern match of the whole of @p text. When it matches and the pattern
 * has a '*', [*capture, *capture + *capture_len) is what the first '*' matched. */
bool gw_folder_pattern_match(const char *pattern, const char *text, size_t *capture,
                             size_t *capture_len);

/* The name with the source delimiter replaced by '/' (what patterns see). Caller frees. */
char *gw_folder_display_name(const char *name, char delimiter);

/* Split @p name at @p delimiter (0: one component). False, with *error, if
 * a component is empty ("a//b", "/a", "a/") or the name is empty. */
bool gw_folder_split(const char *name, char delimiter, char ***components, size_t *count,
                     char **error);
void gw_folder_components_free(char **components, size_t count);

/* Role name as patterns write it ("\Sent"); NULL for GW_ROLE_NONE. */
const char *gw_folder_role_name(enum gw_folder_role role);

/* Two source folders that landed on one sink folder id. */
struct gw_folder_collision {
	size_t first;  /* indexes into the id array given to gw_folder_collisions */
	size_t second; /* > first */
};

/* Every pair (i, j), i < j, with ids[i] == ids[j] (NULL ids are skipped), pairing
 * each later folder with the first one that claimed the id. Caller frees *out. */
size_t gw_folder_collisions(const char *const *ids, size_t count, struct gw_folder_collision **out);

#endif
