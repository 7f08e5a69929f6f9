// Keyboard use without a mouse: table rows that select on click also select on Enter or Space, and Escape
// closes the disclosure (<details>) that holds the focus. Native controls (buttons, forms, selects) need
// nothing more.

/** A row's keydown handler: Enter or Space on the row itself (not on a button inside it) acts as a click. */
export function activateOnKey(fn: () => void): (e: KeyboardEvent) => void {
  return (e) => {
    if (e.target !== e.currentTarget || (e.key !== 'Enter' && e.key !== ' ')) return;
    e.preventDefault();
    fn();
  };
}

/** Window keydown: Escape closes the innermost open <details> around the focus and focuses its summary. */
export function closeDisclosureOnEscape(e: KeyboardEvent): void {
  if (e.key !== 'Escape' || e.defaultPrevented || !(e.target instanceof Element)) return;
  const details = e.target.closest('details[open]');
  if (!(details instanceof HTMLDetailsElement)) return;
  e.preventDefault();
  details.open = false;
  details.querySelector('summary')?.focus();
}
