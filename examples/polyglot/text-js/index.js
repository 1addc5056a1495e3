// The polyglot example's JavaScript activities (componentize-js).
// Every exported function is an activity type; WIT records arrive as
// objects with camelCase fields.
import { log } from 'caisson:activity/context@0.1.0';

const escape = (s) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

// (The JS engine inside a component, StarlingMonkey, is built without ICU:
// no String.prototype.normalize and no Intl.)
export function slugify(title) {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

export function renderHtml(title, stats, keywords) {
  const items = keywords.map((k) => `    <li>${escape(k.word)} <small>×${k.count}</small></li>`).join('\n');
  const html = [
    `<article id="${slugify(title)}">`,
    `  <h1>${escape(title)}</h1>`,
    `  <p>${stats.words} words in ${stats.sentences} sentences; longest word: <em>${escape(stats.longestWord)}</em>.</p>`,
    `  <ul>`,
    items,
    `  </ul>`,
    `</article>`,
  ].join('\n');
  log('info', `rendered ${html.length} bytes of HTML (JavaScript)`);
  return html;
}
