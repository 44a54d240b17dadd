/* Per-domain and per-account policy sections of posthorn.conf (see conf_policy.h). */
#include "core/conf_policy.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/conf.h"
#include "core/xmalloc.h"
#include "core/banned.h"

static const char *const conf_policy_names[CONF_POLICY_KEY_COUNT] = {
    "inbound_checks", "spf_reject_fail", "dmarc_reject", "dmarc_quarantine", "greylisting", "dnsbl",
};

static bool *conf_policy_field(struct conf_policy *p, enum conf_policy_key key)
{
	switch (key) {
	case CONF_POLICY_INBOUND_CHECKS:
		return &p->inbound_checks;
	case CONF_POLICY_SPF_REJECT_FAIL:
		return &p->spf_reject_fail;
	case CONF_POLICY_DMARC_REJECT:
		return &p->dmarc_reject;
	case CONF_POLICY_DMARC_QUARANTINE:
		return &p->dmarc_quarantine;
	case CONF_POLICY_GREYLISTING:
		return &p->greylisting;
	case CONF_POLICY_DNSBL:
	case CONF_POLICY_KEY_COUNT:
		break;
	}
	return &p->dnsbl;
}

bool conf_policy_get(const struct conf_policy *policy, enum conf_policy_key key)
{
	return *conf_policy_field((struct conf_policy *)policy, key);
}

/* The name of a section in lower case without a trailing dot, or NULL when it is not a
 * domain (account: an address local@domain). */
static char *conf_policy_name_dup(const char *name, size_t len, bool account)
{
	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > 320)
		return NULL;
	size_t ats = 0, at = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch <= 0x20 || ch == 0x7f || ch == '[' || ch == ']' || ch == '#')
			return NULL;
		if (ch == '@') {
			ats++;
			at = i;
		}
	}
	if (account ? ats != 1 || at == 0 || at + 1 == len || name[at + 1] == '.' : ats != 0)
		return NULL;
	if (name[account ? at + 1 : 0] == '.')
		return NULL;
	char *s = xstrndup(name, len);
	for (char *c = s; *c != '\0'; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return s;
}

static struct conf_policy_section *conf_policy_find(const struct conf_policies *p, const char *name,
                                                    size_t len, bool account)
{
	for (size_t i = 0; i < p->count; i++) {
		struct conf_policy_section *s = &p->sections[i];
		if (s->account == account && strlen(s->name) == len &&
		    strncasecmp(s->name, name, len) == 0)
			return s;
	}
	return NULL;
}

static struct conf_policy_section *conf_policy_add(struct conf_policies *p, char *name,
                                                   bool account)
{
	if (p->count == p->cap) {
		p->cap = p->cap == 0 ? 8 : p->cap * 2;
		p->sections = xrealloc(p->sections, p->cap * sizeof(*p->sections));
	}
	struct conf_policy_section *s = &p->sections[p->count++];
	*s = (struct conf_policy_section){.name = name, .account = account};
	return s;
}

int conf_policy_section_begin(struct conf_policies *p, const char *line, const char **why_r)
{
	size_t n = strlen(line);
	if (n < 2 || line[0] != '[' || line[n - 1] != ']') {
		*why_r = "expected a section header '[domain NAME]' or '[account ADDRESS]'";
		return -1;
	}
	const char *in = line + 1, *end = line + n - 1;
	while (in < end && (*in == ' ' || *in == '\t'))
		in++;
	while (end > in && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	bool account;
	if ((size_t)(end - in) > 7 && strncmp(in, "domain", 6) == 0 &&
	    (in[6] == ' ' || in[6] == '\t'))
		account = false;
	else if ((size_t)(end - in) > 8 && strncmp(in, "account", 7) == 0 &&
	         (in[7] == ' ' || in[7] == '\t'))
		account = true;
	else {
		*why_r = "expected a section header '[domain NAME]' or '[account ADDRESS]'";
		return -1;
	}
	in += account ? 7 : 6;
	while (in < end && (*in == ' ' || *in == '\t'))
		in++;
	char *name = conf_policy_name_dup(in, (size_t)(end - in), account);
	if (name == NULL) {
		*why_r = account ? "expected an address local@domain" : "expected a domain name";
		return -1;
	}
	if (conf_policy_find(p, name, strlen(name), account) != NULL) {
		free(name);
		*why_r = "a second section for the same name";
		return -1;
	}
	if (p->count >= CONF_POLICY_SECTIONS_MAX) {
		free(name);
		*why_r = "too many sections";
		return -1;
	}
	(void)conf_policy_add(p, name, account);
	return 0;
}

int conf_policy_section_set(struct conf_policies *p, const char *key, const char *value,
                            const char **why_r)
{
	ASSERT(p->count > 0);
	struct conf_policy_section *s = &p->sections[p->count - 1];
	for (int k = 0; k < CONF_POLICY_KEY_COUNT; k++) {
		if (strcmp(conf_policy_names[k], key) != 0)
			continue;
		bool v;
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 ||
		    strcmp(value, "1") == 0)
			v = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 ||
		         strcmp(value, "0") == 0)
			v = false;
		else {
			*why_r = "expected yes or no";
			return -1;
		}
		*conf_policy_field(&s->values, (enum conf_policy_key)k) = v;
		s->set |= 1u << k;
		return 0;
	}
	*why_r = "not allowed in a section (only inbound_checks, spf_reject_fail, dmarc_reject, "
	         "dmarc_quarantine, greylisting, dnsbl; global settings go before the first "
	         "section)";
	return -1;
}

void conf_policy_clear(struct conf_policies *p)
{
	for (size_t i = 0; i < p->count; i++)
		free(p->sections[i].name);
	free(p->sections);
	p->sections = NULL;
	p->count = p->cap = 0;
}

struct conf_policy conf_policy_global(const struct conf *c)
{
	return (struct conf_policy){
	    .inbound_checks = c->inbound_checks,
	    .spf_reject_fail = c->spf_reject_fail,
	    .dmarc_reject = c->dmarc_reject,
	    .dmarc_quarantine = c->dmarc_quarantine,
	    .greylisting = c->greylisting,
	    .dnsbl = c->dnsbl,
	};
}

static void conf_policy_overlay(struct conf_policy *to, const struct conf_policy_section *s)
{
	if (s == NULL)
		return;
	for (int k = 0; k < CONF_POLICY_KEY_COUNT; k++)
		if (s->set & (1u << k))
			*conf_policy_field(to, (enum conf_policy_key)k) =
			    conf_policy_get(&s->values, (enum conf_policy_key)k);
}

struct conf_policy conf_policy_for(const struct conf *c, const char *address)
{
	struct conf_policy out = conf_policy_global(c);
	const struct conf_policies *p = &c->policies;
	if (p->count == 0)
		return out;
	size_t len = strlen(address);
	if (len > 0 && address[len - 1] == '.')
		len--;
	const char *at = memchr(address, '@', len);
	const char *domain = at != NULL ? at + 1 : address;
	conf_policy_overlay(&out,
	                    conf_policy_find(p, domain, len - (size_t)(domain - address), false));
	if (at != NULL)
		conf_policy_overlay(&out, conf_policy_find(p, address, len, true));
	return out;
}

/* inbound_checks_skip_domains: each domain's mail is checked but DMARC's verdict neither
 * refuses it nor puts it in Junk, unless its own section says otherwise (dmarc_reject and
 * dmarc_quarantine off). spf_reject_fail stays as it was before sections existed: global. */
static void conf_policy_skip_domains(struct conf *c)
{
	const unsigned actions =
	    1u << CONF_POLICY_DMARC_REJECT | 1u << CONF_POLICY_DMARC_QUARANTINE;
	for (const char *q = c->inbound_checks_skip_domains; *q != '\0';) {
		while (*q == ' ' || *q == '\t' || *q == ',')
			q++;
		size_t n = strcspn(q, " \t,");
		char *name = n > 0 ? conf_policy_name_dup(q, n, false) : NULL;
		q += n;
		if (name == NULL)
			continue;
		struct conf_policy_section *s =
		    conf_policy_find(&c->policies, name, strlen(name), false);
		if (s == NULL)
			s = conf_policy_add(&c->policies, name, false);
		else
			free(name);
		for (int k = 0; k < CONF_POLICY_KEY_COUNT; k++) {
			if (!(actions & (1u << k)) || (s->set & (1u << k)))
				continue;
			*conf_policy_field(&s->values, (enum conf_policy_key)k) = false;
			s->set |= 1u << k;
		}
	}
}

void conf_policy_finish(struct conf *c)
{
	struct conf_policies *p = &c->policies;
	conf_policy_skip_domains(c);
	p->any = p->all = conf_policy_global(c);
	for (size_t i = 0; i < p->count; i++) {
		/* an account section is seen over its domain's section (if any) */
		struct conf_policy e = conf_policy_for(c, p->sections[i].name);
		for (int k = 0; k < CONF_POLICY_KEY_COUNT; k++) {
			bool v = conf_policy_get(&e, (enum conf_policy_key)k);
			*conf_policy_field(&p->any, (enum conf_policy_key)k) |= v;
			*conf_policy_field(&p->all, (enum conf_policy_key)k) &= v;
		}
	}
}
