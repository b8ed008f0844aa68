#!/bin/sh
# Runs a test without the BLAS variables of the caller's environment: a machine (or a user)
# that exports OPENBLAS_CORETYPE would otherwise change what every command prints, and the
# tests that steer the kernel set these variables themselves (tests/test_blas_kernel.cpp).
exec env -u OPENBLAS_CORETYPE -u CHAINRULE_BLAS_KERNEL -u CHAINRULE_BLAS_CHOSEN "$@"
