// Progressive enhancement of the mastertrail page: without this script every link and
// form works by loading the page. With it, a master's trail opens in place: the script
// fetches the same server-rendered page and moves its trail section into this one
// (DOMParser runs no script and the server escaped every text of the database).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("mastertrail");
  if (!root || !window.fetch || !window.DOMParser) return;
  root.classList.add("mt-js");  // the enhanced page: trails open in place
  root.querySelectorAll("#fleet a[href*='master=']").forEach((link) => {
    link.addEventListener("click", async (click) => {
      click.preventDefault();
      try {
        const response = await fetch(link.href);
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.getElementById("trail");
        if (!response.ok || !fresh) throw new Error("no trail");
        const old = document.getElementById("trail");
        if (old) old.replaceWith(fresh); else root.querySelector("#as-of").before(fresh);
        history.replaceState(null, "", link.href);
        fresh.scrollIntoView();
      } catch (error) {
        window.location.href = link.href;  // the page itself shows the trail
      }
    });
  });
});
