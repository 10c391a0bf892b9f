/* test_dating.c - which update dates a mode change (scanner/dating.c): an egress update towards
 * the observed mode (NULL observed: AWS_MANAGED), made no later than the scan saw the mode. The
 * pass itself runs against fakeaws in tests/integration/test_dating.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "scanner/dating.h"
#include "scanner/eks.h"

#define EGRESS EKS_EGRESS_UPDATE_TYPE
#define T 1795703460.0

static void test_matches(void **state)
{
    (void)state;
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T + 60));
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T));
    /* an update towards another mode, or of another kind, is not this change */
    assert_false(dating_update_matches(EGRESS, "AWS_MANAGED", T, "CUSTOMER_ROUTED", T + 60));
    assert_false(
        dating_update_matches("VersionUpdate", "CUSTOMER_ROUTED", T, "CUSTOMER_ROUTED", T + 60));
    assert_false(dating_update_matches(EGRESS, "", T, "CUSTOMER_ROUTED", T + 60));
    /* the mode not reported is AWS_MANAGED, the API's default */
    assert_true(dating_update_matches(EGRESS, "AWS_MANAGED", T, NULL, T + 60));
    assert_false(dating_update_matches(EGRESS, "CUSTOMER_ISOLATED", T, NULL, T + 60));
    /* made after the scan saw the mode: not what made it */
    assert_false(
        dating_update_matches(EGRESS, "CUSTOMER_ROUTED", T + 61, "CUSTOMER_ROUTED", T + 60));
    /* an update without a time still counts (it cannot be placed after the scan) */
    assert_true(dating_update_matches(EGRESS, "CUSTOMER_ROUTED", 0, "CUSTOMER_ROUTED", T));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
