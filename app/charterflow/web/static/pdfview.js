// The in-app PDF viewer: a page drawn by pdf.js on a canvas, pdf.js's text layer over it, and
// the text-layer spans that hold the cited passage highlighted. pdf.js is vendored under
// /static/vendor/pdfjs at build time (app/charterflow/web/vendor.py) and loaded on first use;
// without it `show` rejects and the citation view keeps to the text. Configured for the page's
// CSP as it is: module and worker from 'self', no eval (isEvalSupported), no WebAssembly
// (useWasm), fonts and character maps from 'self'; the PDF's bytes are fetched by this page.
"use strict";

(() => {
  const BASE = "/static/vendor/pdfjs/";
  let library = null;

  function load() {
    library ??= import(`${BASE}legacy/build/pdf.min.mjs`)
      .then((lib) => {
        lib.GlobalWorkerOptions.workerSrc = `${BASE}legacy/build/pdf.worker.min.mjs`;
        return lib;
      })
      .catch((err) => {
        library = null; // try again next time (the files may be vendored meanwhile)
        throw err;
      });
    return library;
  }

  const opened = new Map(); // content URL → Promise<PDFDocumentProxy>
  async function open(lib, url) {
    if (!opened.has(url)) {
      const task = (async () => {
        const response = await fetch(url, { credentials: "same-origin" });
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const data = new Uint8Array(await response.arrayBuffer());
        return lib.getDocument({
          data,
          isEvalSupported: false,
          useWasm: false,
          enableXfa: false,
          standardFontDataUrl: `${BASE}standard_fonts/`,
          cMapUrl: `${BASE}cmaps/`,
          cMapPacked: true,
        }).promise;
      })();
      task.catch(() => opened.delete(url));
      opened.set(url, task);
    }
    return opened.get(url);
  }

  // Letters and digits only: pdf.js's text items and the extracted text differ in spaces,
  // line-end hyphens and ligatures, never in the letters themselves.
  const letters = (s) => s.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}]+/gu, "");

  // Where `passage` is among the text items `strings`: [item, character] of its first and last
  // letters, found by letters alone; a long passage whose middle differs is found by its first
  // and last 40 letters. Null when it is not on the page.
  function find(strings, passage) {
    let page = "";
    const owner = []; // for each letter of `page`: [item, character index]
    strings.forEach((str, i) => {
      let at = 0;
      for (const char of str) {
        const n = letters(char);
        page += n;
        for (let k = 0; k < n.length; k += 1) owner.push([i, at]);
        at += char.length;
      }
    });
    const target = letters(passage);
    if (!target) return null;
    let start = page.indexOf(target);
    let end = start + target.length;
    if (start < 0) {
      const head = target.slice(0, 40);
      const tail = target.slice(-40);
      start = page.indexOf(head);
      const at = start < 0 ? -1 : page.indexOf(tail, start);
      if (at < 0) return null;
      end = at + tail.length;
    }
    return { first: owner[start], last: owner[end - 1] };
  }

  // Tint the cited characters: whole spans inside the passage, and the cited part of the spans
  // it begins and ends in (split as pdf.js's own find bar does). Returns the tinted elements.
  function highlight(divs, strings, passage) {
    const found = find(strings, passage);
    if (!found) return [];
    const marked = [];
    for (let i = found.first[0]; i <= found.last[0]; i += 1) {
      const div = divs[i];
      if (!div) continue;
      const str = strings[i];
      const from = i === found.first[0] ? found.first[1] : 0;
      const lastChar = i === found.last[0] ? found.last[1] : str.length - 1;
      const to = lastChar + (str.codePointAt(lastChar) > 0xffff ? 2 : 1);
      if (from === 0 && to >= str.length) {
        div.classList.add("cited");
        marked.push(div);
        continue;
      }
      const part = document.createElement("span");
      part.className = "cited part";
      part.textContent = str.slice(from, to);
      div.replaceChildren(str.slice(0, from), part, str.slice(to));
      marked.push(part);
    }
    return marked;
  }

  // Show page `page` of the PDF at `url` in `stage`, `quote` highlighted on that page;
  // `onPage(number, pages, found)` after each page is drawn. Resolves to a pager.
  async function show(stage, { url, page, quote, onPage }) {
    const lib = await load();
    const pdf = await open(lib, url);
    let drawing = null;
    let zoom = 1; // times the stage's width
    let shown = page;

    async function render(wanted) {
      const number = Math.min(Math.max(1, wanted), pdf.numPages);
      shown = number;
      const pdfPage = await pdf.getPage(number);
      const width = Math.max(stage.clientWidth, 280) * zoom;
      const viewport = pdfPage.getViewport({ scale: width / pdfPage.getViewport({ scale: 1 }).width });
      const ratio = window.devicePixelRatio || 1;
      const wrap = document.createElement("div");
      wrap.className = "pdf-page";
      wrap.style.setProperty("--total-scale-factor", String(viewport.scale));
      wrap.style.width = `${Math.floor(viewport.width)}px`;
      wrap.style.height = `${Math.floor(viewport.height)}px`;
      const canvas = document.createElement("canvas");
      canvas.width = Math.floor(viewport.width * ratio);
      canvas.height = Math.floor(viewport.height * ratio);
      const layer = document.createElement("div");
      layer.className = "textLayer";
      wrap.append(canvas, layer);
      drawing?.cancel();
      drawing = pdfPage.render({
        canvasContext: canvas.getContext("2d"),
        viewport,
        transform: ratio === 1 ? null : [ratio, 0, 0, ratio, 0, 0],
      });
      await drawing.promise;
      stage.replaceChildren(wrap);
      wrap.dataset.page = String(number);
      const text = new lib.TextLayer({ textContentSource: pdfPage.streamTextContent(), container: layer, viewport });
      await text.render();
      const marked = number === page && quote ? highlight(text.textDivs, text.textContentItemsStr, quote) : [];
      if (onPage) onPage(number, pdf.numPages, marked.length > 0, zoom);
      if (marked.length) marked[0].scrollIntoView({ block: "center" });
      return marked.length;
    }

    // Zoom by steps of 1.5 between 1 (the page as wide as the stage) and 5 (small screens).
    function rezoom(step) {
      zoom = Math.min(Math.max(1, zoom * 1.5 ** step), 5);
      return render(shown);
    }

    await render(page);
    return { pages: pdf.numPages, render, zoom: rezoom };
  }

  window.CharterFlow = window.CharterFlow || {};
  window.CharterFlow.pdfView = { show };
})();
