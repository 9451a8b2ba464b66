// The console's only script (served from the package): uploads by drag and drop or by
// choosing files, one at a time, each a POST of the file's bytes with a progress bar.
// Messages are set as text (textContent), never as markup.
"use strict";

(function () {
  const zone = document.getElementById("dropzone");
  if (!zone) {
    return;
  }
  const input = document.getElementById("upload-input");
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const prefix = zone.dataset.prefix || "";

  function say(text, failed) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(failed));
  }

  function send(file) {
    return new Promise(function (resolve, reject) {
      const request = new XMLHttpRequest();
      request.open("POST", "/upload?" + new URLSearchParams({ key: prefix + file.name }));
      request.setRequestHeader("X-CSRF-Token", csrf);
      request.setRequestHeader("Content-Type", "application/octet-stream");
      request.upload.onprogress = function (event) {
        if (event.lengthComputable) {
          bar.value = Math.round((100 * event.loaded) / event.total);
        }
      };
      request.onload = function () {
        let answer = {};
        try {
          answer = JSON.parse(request.responseText);
        } catch (ignored) {
          answer = { error: "the console answered " + request.status };
        }
        if (request.status === 200) {
          resolve(answer);
        } else {
          reject(new Error(answer.error || "the console answered " + request.status));
        }
      };
      request.onerror = function () {
        reject(new Error("the console cannot be reached"));
      };
      request.send(file);
    });
  }

  async function upload(files) {
    bar.hidden = false;
    for (const file of files) {
      bar.value = 0;
      say("Uploading " + file.name + "…", false);
      try {
        await send(file);
      } catch (error) {
        say(file.name + ": " + error.message, true);
        bar.hidden = true;
        return;
      }
    }
    say("Uploaded.", false);
    window.location.reload();
  }

  zone.addEventListener("dragover", function (event) {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", function () {
    zone.classList.remove("over");
  });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("over");
    upload(Array.from(event.dataTransfer.files));
  });
  input.addEventListener("change", function () {
    upload(Array.from(input.files));
  });
})();
