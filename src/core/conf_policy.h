/* Per-domain and per-account policy of the checks on arrival (port 25): posthorn.conf's
 * `[domain example.org]` and `[account bob@example.org]` sections, after the global
 * settings, each setting only the switches of struct conf_policy. The most specific wins:
 * an account's section, then its domain's, then the global settings (docs/config.md).
 * Parsed with the rest of the file by core/conf; the SMTP server asks conf_policy_for(). */
#ifndef POSTHORN_CORE_CONF_POLICY_H
#define POSTHORN_CORE_CONF_POLICY_H

#include <stdbool.h>
#include <stddef.h>

struct conf;

/* The switches one recipient's mail is handled with. */
struct conf_policy {
	bool inbound_checks;   /* checked (SPF, DKIM, DMARC) and the verdicts act on it */
	bool spf_reject_fail;  /* SPF fail: 550 5.7.23 */
	bool dmarc_reject;     /* DMARC p=reject failure: refused (no: Junk) */
	bool dmarc_quarantine; /* DMARC p=quarantine failure: Junk (no: INBOX) */
	bool greylisting;      /* greylist at RCPT */
	bool dnsbl;            /* a client dnsbl_zones list is refused */
};

/* Bits of the keys a section sets (CONF_POLICY_KEY_COUNT of them). */
enum conf_policy_key {
	CONF_POLICY_INBOUND_CHECKS,
	CONF_POLICY_SPF_REJECT_FAIL,
	CONF_POLICY_DMARC_REJECT,
	CONF_POLICY_DMARC_QUARANTINE,
	CONF_POLICY_GREYLISTING,
	CONF_POLICY_DNSBL,
	CONF_POLICY_KEY_COUNT
};

/* Most sections one file may hold. */
#define CONF_POLICY_SECTIONS_MAX 100000

struct conf_policy_section {
	char *name;   /* the domain, or the account's address; lower case */
	bool account; /* [account ...], else [domain ...] */
	unsigned set; /* 1 << enum conf_policy_key of each key given */
	struct conf_policy values;
};

struct conf_policies {
	struct conf_policy_section *sections;
	size_t count, cap;
	struct conf_policy any; /* each switch: on in some policy (global, any section) */
	struct conf_policy all; /* each switch: on in every policy */
};

/* A section header line "[domain NAME]" / "[account ADDRESS]": 0 with a new current
 * section, or -1 with *why_r (static text). */
int conf_policy_section_begin(struct conf_policies *p, const char *line, const char **why_r)
    __attribute__((warn_unused_result));
/* "key = value" inside the current section: 0, or -1 with *why_r (static text). */
int conf_policy_section_set(struct conf_policies *p, const char *key, const char *value,
                            const char **why_r) __attribute__((warn_unused_result));
/* At the end of the file: inbound_checks_skip_domains as domain sections (dmarc_reject and
 * dmarc_quarantine off where a section does not set them), and the any/all summaries. */
void conf_policy_finish(struct conf *conf);
/* Free the sections (the struct itself is the caller's). */
void conf_policy_clear(struct conf_policies *p);

/* The global settings' policy. */
struct conf_policy conf_policy_global(const struct conf *conf);
/* The policy of the mail to address (an account's address, lower or mixed case): its
 * [account] section over its domain's [domain] section over the global settings. */
struct conf_policy conf_policy_for(const struct conf *conf, const char *address);
/* Is the switch on in policy? */
bool conf_policy_get(const struct conf_policy *policy, enum conf_policy_key key);

#endif
