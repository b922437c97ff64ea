/* Connection budgets (see budget.h). */
#include "budget.h"

#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"
#include "util.h"

/* How often a waiting thread looks at the stop level. */
#define POLL_MS 100

struct gw_budget {
	char *key;
	unsigned limit;
	unsigned in_use;
	unsigned waiting; /* threads in gw_budget_acquire: try_acquire leaves slots to them */
	unsigned peak;
	pthread_mutex_t lock;
	pthread_cond_t freed;
};

struct gw_budget *gw_budget_new(const char *key, unsigned limit)
{
	struct gw_budget *b = gw_xcalloc(1, sizeof(*b));
	b->key = gw_xstrdup(key);
	b->limit = limit > 0 ? limit : 1;
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->freed, NULL);
	return b;
}

void gw_budget_free(struct gw_budget *b)
{
	if (b == NULL)
		return;
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->freed);
	free(b->key);
	free(b);
}

static void take_slot(struct gw_budget *b)
{
	b->in_use++;
	if (b->in_use > b->peak)
		b->peak = b->in_use;
}

bool gw_budget_acquire(struct gw_budget *b)
{
	pthread_mutex_lock(&b->lock);
	b->waiting++;
	while (b->in_use >= b->limit) {
		if (gw_cancel_level() >= 1) {
			b->waiting--;
			pthread_mutex_unlock(&b->lock);
			return false;
		}
		struct timespec until = gw_deadline_in_ms(POLL_MS);
		pthread_cond_timedwait(&b->freed, &b->lock, &until);
	}
	b->waiting--;
	take_slot(b);
	pthread_mutex_unlock(&b->lock);
	return true;
}

bool gw_budget_try_acquire(struct gw_budget *b)
{
	pthread_mutex_lock(&b->lock);
	bool free_slot = b->in_use < b->limit && b->waiting == 0;
	if (free_slot)
		take_slot(b);
	pthread_mutex_unlock(&b->lock);
	return free_slot;
}

void gw_budget_release(struct gw_budget *b)
{
	pthread_mutex_lock(&b->lock);
	if (b->in_use > 0)
		b->in_use--;
	pthread_cond_signal(&b->freed);
	pthread_mutex_unlock(&b->lock);
}

void gw_budget_limit_min(struct gw_budget *b, unsigned limit)
{
	pthread_mutex_lock(&b->lock);
	if (limit > 0 && limit < b->limit)
		b->limit = limit;
	pthread_mutex_unlock(&b->lock);
}

void gw_budget_describe(const struct gw_budget *b, struct gw_budget_report *out)
{
	out->key = b->key;
	out->limit = b->limit;
	out->peak = b->peak;
}

const char *gw_budget_key(const struct gw_budget *b)
{
	return b->key;
}

bool gw_budget_acquire_pair(struct gw_budget *source, struct gw_budget *sink, bool wait)
{
	bool (*acquire)(struct gw_budget *) = wait ? gw_budget_acquire : gw_budget_try_acquire;
	if (!acquire(source))
		return false;
	if (!acquire(sink)) {
		gw_budget_release(source);
		return false;
	}
	return true;
}

void gw_budget_release_pair(struct gw_budget *source, struct gw_budget *sink)
{
	gw_budget_release(sink);
	gw_budget_release(source);
}
