/**
 * The UI's only script besides htmx, served at /assets/ui.js (the CSP forbids inline scripts).
 * Copy buttons: `<button data-copy="ID">` copies the text of the element with that id. The
 * clipboard API needs a secure context (https, or the loopback address); elsewhere the text is
 * selected so Ctrl+C copies it.
 */
export const UI_SCRIPT = `
document.addEventListener('click', async (e) => {
  const button = e.target instanceof Element ? e.target.closest('button[data-copy]') : null;
  if (!button) return;
  const el = document.getElementById(button.dataset.copy);
  if (!el) return;
  const text = (el.value ?? el.textContent ?? '').trim();
  const label = button.dataset.label || button.textContent;
  button.dataset.label = label;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(el);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    button.textContent = 'Selected: press Ctrl+C';
  }
  setTimeout(() => { button.textContent = label; }, 2000);
});
`;
