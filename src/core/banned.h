/* Functions that Posthorn code must never call (STYLE.md "Memory, strings, bytes").
 * Include this header last in every .c file, after all system headers: the poison
 * then turns any later use into a compile error. */
#ifndef POSTHORN_CORE_BANNED_H
#define POSTHORN_CORE_BANNED_H

#pragma GCC poison strcpy strcat sprintf vsprintf gets strtok atoi atol

#endif
