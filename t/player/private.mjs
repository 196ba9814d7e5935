// A private stream in the player page, in Debian's chromium, headless,
// driven by playwright-core.
//
//   node t/player/private.mjs URL SHOTDIR NAME TOKEN
//
// Prints "<step> <json>" when a step is done, or "fail <step> <message>"
// and exits 1:
//
//   playing   URL#NAME&token=TOKEN: the video's currentTime advanced by
//             more than 2 s (hls.js, the playlist and its segments)
//   refused   URL#NAME, no token: the page says a viewer token is needed

import { launch, fail } from './browser.mjs';

const [url, shots, name, token] = process.argv.slice(2);
const WAIT = 40000;

let browser = null;
let page = null;
let step = 'start';
const errors = [];

function say(s, data) {
    process.stdout.write(`${s} ${JSON.stringify(data)}\n`);
}

async function pageState() {
    return page.evaluate(() => ({
        state: document.getElementById('state').getAttribute('data-state'),
        text: document.getElementById('state').textContent,
        url: document.getElementById('url').textContent,
        currentTime: document.getElementById('video').currentTime,
        hash: location.hash,
    }));
}

async function main() {
    browser = await launch();

    step = 'playing';
    page = await browser.newPage();
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`${url}#${name}&token=${token}`);
    await page.waitForFunction(() => {
        const v = document.getElementById('video');
        return !v.paused && v.currentTime > 0;
    }, null, { timeout: WAIT, polling: 100 });
    const from = await page.evaluate(
        () => document.getElementById('video').currentTime);
    await page.waitForFunction((to) =>
        document.getElementById('video').currentTime > to,
        from + 2, { timeout: WAIT, polling: 100 });
    say('playing', { from, ...(await pageState()) });
    await page.close();

    step = 'refused';
    page = await browser.newPage();
    await page.goto(`${url}#${name}`);
    await page.waitForFunction(() =>
        document.getElementById('state').getAttribute('data-state')
            === 'private',
        null, { timeout: WAIT, polling: 100 });
    say('refused', { ...(await pageState()), errors });

    await browser.close();
}

main().catch((e) => fail({ browser, page, step, errors, state: pageState,
                          shot: `${shots}/private-${step}.png` }, e));
