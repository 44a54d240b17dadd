/* Counts of the logged-in sessions of one account from one address, to cap them
 * (limit_sessions_per_user_ip, as Dovecot's mail_max_userip_connections). One registry per
 * protocol server; thread-safe: sessions on any loop thread acquire at login and release
 * when they end. */
#ifndef POSTHORN_CORE_USERIP_H
#define POSTHORN_CORE_USERIP_H

#include <stdint.h>

struct userip;

struct userip *userip_new(void);
/* Frees the registry (entries still held are dropped). Accepts NULL; sets *reg to NULL. */
void userip_free(struct userip **reg);

/* Count one more session of account from ip. Returns 1 (counted: release it later with
 * userip_release), or 0 when limit sessions are already counted (nothing counted).
 * limit 0 means no limit (always counted). */
int userip_acquire(struct userip *reg, uint64_t account, const char *ip, unsigned limit)
    __attribute__((warn_unused_result));
/* Forget one session counted by userip_acquire(). */
void userip_release(struct userip *reg, uint64_t account, const char *ip);
/* Sessions counted now for account from ip. */
unsigned userip_count(struct userip *reg, uint64_t account, const char *ip);

#endif
