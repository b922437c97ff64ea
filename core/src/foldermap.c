/* Folder selection and mapping (see foldermap.h for the rules users see). */
#include "foldermap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

static const char *const role_names[] = {
        [GW_ROLE_NONE] = NULL,           [GW_ROLE_INBOX] = "\\Inbox",
        [GW_ROLE_SENT] = "\\Sent",       [GW_ROLE_DRAFTS] = "\\Drafts",
        [GW_ROLE_TRASH] = "\\Trash",     [GW_ROLE_JUNK] = "\\Junk",
        [GW_ROLE_ARCHIVE] = "\\Archive", [GW_ROLE_ALL] = "\\All",
        [GW_ROLE_FLAGGED] = "\\Flagged", [GW_ROLE_IMPORTANT] = "\\Important",
};

const char *gw_folder_role_name(enum gw_folder_role role)
{
	if ((size_t)role >= sizeof(role_names) / sizeof(role_names[0]))
		return NULL;
	return role_names[role];
}

struct gw_folder_rules gw_folder_rules_of(const struct gw_pipeline_cfg *cfg)
{
	struct gw_folder_rules rules = {
	        .include = (const char *const *)cfg->folders_include,
	        .include_count = cfg->folders_include_count,
	        .exclude = (const char *const *)cfg->folders_exclude,
	        .exclude_count = cfg->folders_exclude_count,
	        .map = cfg->folder_map,
	        .map_count = cfg->folder_map_count,
	};
	return rules;
}

/* Backtracking match; patterns are short and have few stars, so the
 * worst case (many stars against a long name) does not arise in practice,
 * and the iterative form keeps it linear for the one-star patterns we see. */
static bool match_from(const char *p, const char *t)
{
	const char *star = NULL;
	const char *resume = NULL;
	while (*t != '\0') {
		if (*p == '*') {
			star = p++;
			resume = t;
		} else if (*p == *t) {
			p++;
			t++;
		} else if (star != NULL) {
			p = star + 1;
			t = ++resume;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

bool gw_folder_pattern_match(const char *pattern, const char *text, size_t *capture,
                             size_t *capture_len)
{
	const char *star = strchr(pattern, '*');
	if (star == NULL) {
		if (capture != NULL)
			*capture = *capture_len = 0;
		return strcmp(pattern, text) == 0;
	}
	size_t prefix = (size_t)(star - pattern);
	if (strncmp(pattern, text, prefix) != 0)
		return false;
	/* The first star takes as little as possible: the rest of the pattern is
	 * tried against every suffix, shortest capture first. */
	const char *rest = star + 1;
	size_t text_len = strlen(text);
	for (size_t end = prefix; end <= text_len; end++) {
		if (match_from(rest, text + end)) {
			if (capture != NULL) {
				*capture = prefix;
				*capture_len = end - prefix;
			}
			return true;
		}
	}
	return false;
}

/* "inbox/x" -> "INBOX/x": IMAP's INBOX is case-insensitive, other names are not. */
static void normalize_inbox(char *name, char delimiter)
{
	size_t len = strlen(name);
	if (len < 5 || strncasecmp(name, "INBOX", 5) != 0)
		return;
	if (len == 5 || (delimiter != 0 && name[5] == delimiter))
		memcpy(name, "INBOX", 5);
}

char *gw_folder_display_name(const char *name, char delimiter)
{
	char *out = gw_xstrdup(name);
	if (delimiter != 0 && delimiter != '/') {
		for (char *p = out; *p != '\0'; p++) {
			if (*p == delimiter)
				*p = '/';
		}
	}
	normalize_inbox(out, '/');
	return out;
}

void gw_folder_components_free(char **components, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(components[i]);
	free(components);
}

bool gw_folder_split(const char *name, char delimiter, char ***components, size_t *count,
                     char **error)
{
	*components = NULL;
	*count = 0;
	if (name[0] == '\0') {
		*error = gw_xstrdup("the folder name is empty");
		return false;
	}
	size_t n = 1;
	if (delimiter != 0) {
		for (const char *p = name; *p != '\0'; p++)
			n += *p == delimiter;
	}
	char **parts = gw_xcalloc(n, sizeof(*parts));
	const char *start = name;
	for (size_t i = 0; i < n; i++) {
		const char *end = delimiter != 0 ? strchr(start, delimiter) : NULL;
		size_t len = end != NULL ? (size_t)(end - start) : strlen(start);
		if (len == 0) {
			*error = gw_xasprintf(
			        "component %zu of the name is empty (the hierarchy "
			        "delimiter '%c' appears at the start, at the end or twice "
			        "in a row)",
			        i + 1, delimiter);
			gw_folder_components_free(parts, n);
			return false;
		}
		parts[i] = gw_xstrndup(start, len);
		start = end != NULL ? end + 1 : start + len;
	}
	*components = parts;
	*count = n;
	return true;
}

/* Strict UTF-8 (no overlongs, no surrogates, nothing above U+10FFFF). */
static bool utf8_valid(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned char c = *s;
		size_t n;
		uint32_t cp;
		if (c < 0x80) {
			s++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		for (size_t i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		static const uint32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
		if (cp < min_for_length[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

/* A pattern matches a folder by its role ("\Sent") or by its display name. */
static bool rule_matches(const char *pattern, const char *display, enum gw_folder_role role,
                         size_t *capture, size_t *capture_len)
{
	if (pattern[0] == '\\') {
		const char *name = gw_folder_role_name(role);
		*capture = *capture_len = 0;
		return name != NULL && strcasecmp(pattern, name) == 0;
	}
	char *normalized = gw_xstrdup(pattern);
	normalize_inbox(normalized, '/');
	bool hit = gw_folder_pattern_match(normalized, display, capture, capture_len);
	free(normalized);
	return hit;
}

static bool any_rule_matches(const char *const *patterns, size_t count, const char *display,
                             enum gw_folder_role role)
{
	size_t capture, capture_len;
	for (size_t i = 0; i < count; i++) {
		if (rule_matches(patterns[i], display, role, &capture, &capture_len))
			return true;
	}
	return false;
}

/* The rule's target with its first '*' replaced by what the pattern's star matched. */
static char *apply_map_target(const struct gw_folder_map_rule *rule, const char *display,
                              size_t capture, size_t capture_len)
{
	const char *star = strchr(rule->to, '*');
	if (star == NULL || strchr(rule->from, '*') == NULL)
		return gw_xstrdup(rule->to);
	return gw_xasprintf("%.*s%.*s%s", (int)(star - rule->to), rule->to, (int)capture_len,
	                    display + capture, star + 1);
}

static void set_illegal(struct gw_mapped_folder *out, char *error)
{
	out->disposition = GW_FOLDER_ILLEGAL;
	out->error = error;
}

/* Components of the sink path: a map rule's target (split at '/'), else the
 * source name split at the source's own delimiter, so a '/' inside a
 * component of a '.'-delimited server stays part of that component. */
static void map_path(const struct gw_folder_rules *rules, const struct gw_folder_info *info,
                     const char *display, struct gw_mapped_folder *out)
{
	char *error = NULL;
	char *target = NULL;
	char delimiter = info->delimiter;
	for (size_t i = 0; i < rules->map_count && target == NULL; i++) {
		size_t capture, capture_len;
		if (rule_matches(rules->map[i].from, display, info->role, &capture, &capture_len))
			target = apply_map_target(&rules->map[i], display, capture, capture_len);
	}
	if (target != NULL) {
		delimiter = '/';
	} else {
		target = gw_xstrdup(info->name);
		normalize_inbox(target, delimiter);
	}
	if (!gw_folder_split(target, delimiter, &out->components, &out->component_count, &error)) {
		set_illegal(out, gw_xasprintf("cannot migrate folder \"%s\" (mapped to \"%s\"): %s",
		                              info->name, target, error));
		free(error);
	}
	free(target);
}

void gw_folder_map(const struct gw_folder_rules *rules, const struct gw_folder_info *info,
                   struct gw_mapped_folder *out)
{
	memset(out, 0, sizeof(*out));
	out->source_name = gw_xstrdup(info->name != NULL ? info->name : "");
	out->delimiter = info->delimiter;
	out->role = info->role;
	if (!info->selectable) {
		out->disposition = GW_FOLDER_CONTAINER;
		return;
	}
	if (!utf8_valid((const unsigned char *)out->source_name)) {
		set_illegal(out,
		            gw_xstrdup("cannot migrate a folder whose name is not valid UTF-8"));
		return;
	}
	char *display = gw_folder_display_name(out->source_name, info->delimiter);
	bool included = rules->include_count == 0 ||
	                any_rule_matches(rules->include, rules->include_count, display, info->role);
	if (!included ||
	    any_rule_matches(rules->exclude, rules->exclude_count, display, info->role)) {
		out->disposition = GW_FOLDER_EXCLUDED;
	} else {
		out->disposition = GW_FOLDER_MIGRATE;
		map_path(rules, info, display, out);
	}
	free(display);
	out->path.struct_size = sizeof(out->path);
	out->path.count = out->component_count;
	out->path.components = (const char *const *)out->components;
	out->path.role = out->role;
}

void gw_mapped_folder_free(struct gw_mapped_folder *folder)
{
	if (folder == NULL)
		return;
	free(folder->source_name);
	gw_folder_components_free(folder->components, folder->component_count);
	free(folder->error);
	memset(folder, 0, sizeof(*folder));
}

size_t gw_folder_collisions(const char *const *ids, size_t count, struct gw_folder_collision **out)
{
	size_t n = 0;
	*out = NULL;
	/* Folder counts per mailbox are small (hundreds): quadratic is simpler than a hash. */
	for (size_t j = 1; j < count; j++) {
		if (ids[j] == NULL)
			continue;
		for (size_t i = 0; i < j; i++) {
			if (ids[i] != NULL && strcmp(ids[i], ids[j]) == 0) {
				*out = gw_xrealloc(*out, (n + 1) * sizeof(**out));
				(*out)[n].first = i;
				(*out)[n].second = j;
				n++;
				break;
			}
		}
	}
	return n;
}
