/* Which origin keys a folder already holds. File names written by this sink
 * look like "<date>.G<origin_key>.<host>,S=<size>:2,<flags>" (README.md), so
 * the key can be read from the name without opening the file. The set keeps
 * only a 64-bit hash per message (memory stays small for big folders); a hit
 * is confirmed by finding the actual file. */
#include "maildir.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: the keys come from the core, not from an adversary. 0 marks an empty slot. */
static uint64_t key_hash(const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)key[i];
		h *= 1099511628211ull;
	}
	return h ? h : 1;
}

static void keyset_insert_hash(struct md_keyset *set, uint64_t h)
{
	size_t mask = set->cap - 1;
	size_t i = (size_t)h & mask;
	while (set->slots[i] && set->slots[i] != h)
		i = (i + 1) & mask;
	if (!set->slots[i]) {
		set->slots[i] = h;
		set->count++;
	}
}

static void keyset_grow(struct md_keyset *set)
{
	struct md_keyset bigger = {0};
	bigger.cap = set->cap ? 2 * set->cap : 64;
	bigger.slots = md_xcalloc(bigger.cap, sizeof(uint64_t));
	for (size_t i = 0; i < set->cap; i++)
		if (set->slots[i])
			keyset_insert_hash(&bigger, set->slots[i]);
	free(set->slots);
	*set = bigger;
}

void md_keyset_add(struct md_keyset *set, const char *key, size_t len)
{
	if ((set->count + 1) * 4 > set->cap * 3)
		keyset_grow(set);
	keyset_insert_hash(set, key_hash(key, len));
}

bool md_keyset_has(const struct md_keyset *set, const char *key)
{
	if (!set->cap)
		return false;
	uint64_t h = key_hash(key, strlen(key));
	size_t mask = set->cap - 1;
	for (size_t i = (size_t)h & mask; set->slots[i]; i = (i + 1) & mask)
		if (set->slots[i] == h)
			return true;
	return false;
}

void md_keyset_clear(struct md_keyset *set)
{
	if (set->cap)
		memset(set->slots, 0, set->cap * sizeof(*set->slots));
	set->count = 0;
}

void md_keyset_free(struct md_keyset *set)
{
	free(set->slots);
	memset(set, 0, sizeof(*set));
}

/* The origin key in a file name "<digits>.G<key>.<rest>", or false. */
static bool origin_of_name(const char *name, const char **key, size_t *len)
{
	const char *p = name;
	while (*p >= '0' && *p <= '9')
		p++;
	if (p == name || p[0] != '.' || p[1] != 'G')
		return false;
	const char *start = p + 2, *end = start;
	while ((*end >= 'a' && *end <= 'z') || (*end >= '0' && *end <= '9'))
		end++;
	if (end == start || *end != '.')
		return false;
	*key = start;
	*len = (size_t)(end - start);
	return true;
}

bool md_keyset_scan(struct md_keyset *set, const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	for (struct dirent *e; (e = readdir(d));) {
		const char *key;
		size_t len;
		if (origin_of_name(e->d_name, &key, &len))
			md_keyset_add(set, key, len);
	}
	closedir(d);
	return true;
}

bool md_find_origin(const char *dir, const char *key, char **base)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	size_t key_len = strlen(key);
	bool found = false;
	for (struct dirent *e; !found && (e = readdir(d));) {
		const char *k;
		size_t len;
		if (!origin_of_name(e->d_name, &k, &len) || len != key_len ||
		    memcmp(k, key, len) != 0)
			continue;
		const char *info = strstr(e->d_name, ":2,");
		size_t base_len = info ? (size_t)(info - e->d_name) : strlen(e->d_name);
		*base = md_xasprintf("%.*s", (int)base_len, e->d_name);
		found = true;
	}
	closedir(d);
	return found;
}
