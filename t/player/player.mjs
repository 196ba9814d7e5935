// The player page in Debian's chromium, headless, driven by playwright-core.
//
//   node t/player/player.mjs URL SHOTDIR NAME [OTHER...]
//
// Talks to t/170-player.t in lines: it prints "<step> <json>" when a step
// is done (or "fail <step> <message>" and exits 1) and, where the test has
// to act on the encoder, waits for a line on stdin before going on.
//
//   listed    NAME and the OTHERs are in the page's list of live streams
//   playing   NAME clicked: the video's currentTime advanced by more than
//             2 s; the frame
//   stopped?  (waits for "stopped" on stdin: the encoder is gone)
//   offline   the page says offline and NAME left the list
//   started?  (waits for "started": the encoder is back)
//   back      the page plays again by itself: currentTime advanced 2 s more

import { createInterface } from 'node:readline';
import { launch, fail } from './browser.mjs';

const [url, shots, name, ...others] = process.argv.slice(2);
const WAIT = 40000;

const lines = createInterface({ input: process.stdin });
const pending = [];
const waiters = [];
lines.on('line', (l) => {
    const w = waiters.shift();
    if (w) {
        w(l.trim());
    } else {
        pending.push(l.trim());
    }
});

function command() {
    if (pending.length) {
        return Promise.resolve(pending.shift());
    }
    return new Promise((resolve) => waiters.push(resolve));
}

// each step's line carries ms, the time since the last one ended
let since = Date.now();

function say(step, data) {
    const now = Date.now();
    process.stdout.write(step + ' '
                         + JSON.stringify({ ...data, ms: now - since })
                         + '\n');
    since = now;
}

let browser;
let page;
let step = 'launch';
const errors = [];

// the state line of the page, for the messages
async function pageState() {
    return page.evaluate(() => ({
        state: document.getElementById('state').getAttribute('data-state'),
        text: document.getElementById('state').textContent,
        names: [...document.querySelectorAll('#streams li')]
            .map((li) => li.getAttribute('data-name')),
        list: [...document.querySelectorAll('#streams li')]
            .map((li) => li.textContent),
        note: document.getElementById('streams-note').textContent,
        currentTime: document.getElementById('video').currentTime,
        hash: location.hash,
    }));
}

// waits until the video plays and its currentTime moved by more than secs
async function advances(secs) {
    await page.waitForFunction(() => {
        const v = document.getElementById('video');
        return document.getElementById('state')
                   .getAttribute('data-state') === 'live'
               && !v.paused && v.currentTime > 0;
    }, null, { timeout: WAIT, polling: 100 });

    const from = await page.evaluate(
        () => document.getElementById('video').currentTime);
    const t0 = Date.now();

    await page.waitForFunction((to) =>
        document.getElementById('video').currentTime > to,
        from + secs, { timeout: WAIT, polling: 100 });

    const to = await page.evaluate(
        () => document.getElementById('video').currentTime);
    return { from, to, wall: (Date.now() - t0) / 1000 };
}

// the current frame drawn on a canvas: how far it is from one flat colour
async function frame() {
    return page.evaluate(() => {
        const v = document.getElementById('video');
        const c = document.createElement('canvas');
        c.width = v.videoWidth;
        c.height = v.videoHeight;
        const g = c.getContext('2d');
        g.drawImage(v, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        const colours = new Set();
        let sum = 0;
        let sq = 0;
        const n = d.length / 4;
        for (let i = 0; i < d.length; i += 4) {
            const y = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
            sum += y;
            sq += y * y;
            colours.add((d[i] >> 5) << 6 | (d[i + 1] >> 5) << 3
                        | d[i + 2] >> 5);
        }
        const mean = sum / n;
        return {
            width: c.width,
            height: c.height,
            mean: Math.round(mean),
            stddev: Math.round(Math.sqrt(Math.max(0, sq / n - mean * mean))),
            colours: colours.size,
        };
    });
}

async function main() {
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
    page.on('pageerror', (e) => errors.push(String(e)));

    step = 'listed';
    since = Date.now();
    await page.goto(url);
    for (const n of [name, ...others]) {
        await page.locator(`#streams li[data-name="${n}"] a`)
            .waitFor({ timeout: WAIT });
    }
    say('listed', await pageState());

    step = 'playing';
    await page.locator(`#streams li[data-name="${name}"] a`).click();
    const played = await advances(2);
    say('playing', { ...played, frame: await frame(),
                     hash: await page.evaluate(() => location.hash) });

    say('stopped?');
    step = 'offline';
    await command();
    since = Date.now();
    await page.waitForFunction((n) =>
        document.getElementById('state').getAttribute('data-state')
            === 'offline'
        && !document.querySelector(`#streams li[data-name="${n}"]`),
        name, { timeout: WAIT, polling: 100 });
    say('offline', await pageState());

    say('started?');
    step = 'back';
    await command();
    since = Date.now();
    const again = await advances(2);
    say('back', { ...again, frame: await frame(), errors });

    await browser.close();
}

main().catch((e) => fail({ browser, page, step, errors, state: pageState,
                          shot: `${shots}/player-${step}.png` }, e));
