/* global document, window, fetch, pageView */
// Runs after the functions of src/status-page/view.ts (pageView and its helpers), inlined before it.
// Builds the same markup as status-page.eta, with textContent only: every value stays text.
(function () {
  'use strict';
  var refreshMs = (Number(document.body.getAttribute('data-refresh-seconds')) || 5) * 1000;

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === 'text') node.textContent = attrs.text;
      else if (attrs[name] !== '') node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }
  function tone(t) { return 'tone-' + (t || 'none'); }

  function sectionNode(s) {
    var children = [el('h2', { text: s.title })];
    s.notes.forEach(function (n) { children.push(el('p', { class: 'note ' + tone(n.tone), text: n.text })); });
    if (s.rows.length === 0) {
      children.push(el('p', { class: 'empty', text: s.empty }));
    } else {
      var head = el('tr', {}, s.columns.map(function (c) { return el('th', { scope: 'col', text: c }); }));
      var rows = s.rows.map(function (row) {
        return el('tr', {}, row.map(function (c, i) {
          return el('td', { class: tone(c.tone) + (s.wide.indexOf(i) >= 0 ? ' wide' : ''), title: c.title, text: c.text });
        }));
      });
      children.push(el('div', { class: 'scroll' }, [el('table', {}, [el('thead', {}, [head]), el('tbody', {}, rows)])]));
    }
    return el('section', { id: 'section-' + s.id }, children);
  }

  function render(view) {
    var nodes = view.banners.map(function (b) { return el('p', { class: 'banner ' + tone(b.tone), text: b.text }); });
    nodes.push(el('dl', { id: 'facts' }, view.facts.map(function (f) {
      return el('div', { class: 'fact' }, [el('dt', { text: f.label }), el('dd', { id: 'fact-' + f.id, class: tone(f.tone), text: f.value })]);
    })));
    view.sections.forEach(function (s) { nodes.push(sectionNode(s)); });
    document.getElementById('page').replaceChildren.apply(document.getElementById('page'), nodes);
    document.title = view.title;
  }

  function said(text, bad) {
    var line = document.getElementById('updated');
    line.textContent = text;
    line.className = bad ? 'tone-bad' : 'tone-muted';
  }

  var first = document.querySelector('#updated time');
  var lastGood = first ? first.getAttribute('datetime') : null;
  function refresh() {
    fetch('status.json', { cache: 'no-store', headers: { accept: 'application/json' } })
      .then(function (res) {
        if (!res.ok) throw new Error('the sidecar answered ' + res.status);
        return res.json();
      })
      .then(function (data) {
        var view = pageView(data);
        render(view);
        lastGood = view.generated_at;
        said('Data of ' + view.generated_at + '; refreshes every ' + refreshMs / 1000 + ' s.', false);
      })
      .catch(function (error) {
        said('Cannot reach the sidecar (' + error.message + '); showing the data of ' + lastGood + '.', true);
      })
      .then(function () { window.setTimeout(refresh, refreshMs); });
  }
  window.setTimeout(refresh, refreshMs);
})();
