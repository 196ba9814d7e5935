// What the browser tests share: Debian's chromium, headless, through
// playwright-core, and how a failed step is reported ("fail <step>
// <message> <json>" on stdout, a screenshot in SHOTDIR, exit 1).

import { chromium } from 'playwright-core';

export function launch() {
    return chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
               '--disable-background-networking',
               '--disable-component-update', '--disable-sync'],
    });
}

// t: { browser, page, step, shot (file name), state (async), errors }
export async function fail(t, e) {
    let st = null;
    try {
        st = await t.state();
        await t.page.screenshot({ path: t.shot });
    } catch (ignored) {
        // the browser itself failed
    }
    process.stdout.write(`fail ${t.step} ${String(e.message || e).split('\n')[0]}`
                         + ` ${JSON.stringify({ state: st, errors: t.errors })}\n`);
    if (t.browser) {
        await t.browser.close().catch(() => {});
    }
    process.exit(1);
}
